"""Workflow passes: loading a thread's history, and committing what one pass decided."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from memflow import commands as durable
from memflow import payload
from memflow.store import commands as cmd
from memflow.store.batch import StatementGroup, TickBatcher
from memflow.store.commands import Statement, Thread
from memflow.store.continued import continue_parts, continue_statements, lock_signals
from memflow.store.entity import entity_statement
from memflow.store.fragments import takes_hooks
from memflow.store.interrupts import interrupt
from memflow.store.scope import Part, Scope
from memflow.store.search import search_statement
from memflow.store.tasks import Task
from memflow.store.updates import accept_update, finish_update


def command_statements(t: Thread, c: durable.Command, channel: str) -> list[Statement]:
    """The statements that record command ``c`` of thread ``t`` (its SQL parameters are made
    here and in the builders, from the command's typed fields)."""
    match c:
        case durable.ActivityCall():
            return cmd.activity(t, c, channel)
        case durable.Sleep():
            return cmd.sleep(t, c, channel)
        case durable.WaitForSignal():
            return cmd.wait(t, c, channel)
        case durable.ChildStart():
            return cmd.child(t, c, channel)
        case durable.HookStart():
            return cmd.hook(t, c, channel)
        case durable.Interrupt():
            return interrupt(t, c, channel)
        case durable.Emit():
            return cmd.emit(t, c, channel)
        case durable.Trace():
            return cmd.recorded(t, c, "done", "true")
        case durable.PatchMarker():
            return cmd.recorded(t, c, "done", "true")
        case durable.Now():
            return cmd.recorded(t, c, "done", payload.dumps(c.at.isoformat()))
        case durable.SendSignal():
            return cmd.signal(t, c, channel)
        case durable.EntityCall():
            return entity_statement(t, c, channel)
        case durable.SearchCall():
            return search_statement(t, c, channel)
        case durable.AcceptUpdate():
            return accept_update(t, c, channel)
        case durable.FinishUpdate():
            return finish_update(t, c, channel)
        case durable.ContinueAsNew():
            return continue_statements(t, c, channel)
    raise ValueError(f"unknown command kind {c.kind!r}")


def thread_open(run_status: str, signal_in: bool | None, dim: str) -> bool:
    """Whether a thread may still run: the run is live, or it is a hook of a completed run
    that keeps its hook channel open (``signal_in=True``); ``fragments.thread_may_run`` is
    the same rule in SQL."""
    return run_status == "running" or (
        dim != "" and run_status == "completed" and signal_in is True)


@dataclass(frozen=True)
class Lease:
    """The fencing token of a claimed task: its id, the worker that holds it and the claim
    number (the task's ``attempts`` when claimed). A commit under a lease that has lapsed or
    was taken over is refused by the database."""

    task_id: int
    owner: str
    token: int


REFUSALS = {"MF001": "not live", "MF002": "lease lost", "MF003": "stale"}


@dataclass
class PassOutcome:
    """What a committed pass learned: whether it was applied (``refused`` says why not:
    "not live", "lease lost" or "stale"), immediate results, a new wake, the activity tasks
    it leased to this worker, and the thread's new version."""

    alive: bool
    results: dict[int, dict[str, Any]] = field(default_factory=dict)
    wake: int | None = None
    local: list[Task] = field(default_factory=list)
    version: int | None = None
    refused: str | None = None


class PassQueries(Part):
    """Pass statements of a namespace."""

    def __init__(self, scope: Scope):
        super().__init__(scope)
        self._step_reads = TickBatcher(self._steps_of)
        self._group = StatementGroup(self.store)

    async def load_thread(self, run_id: str, dim: str) -> tuple[dict[str, Any] | None,
                                                                list[dict[str, Any]]]:
        """The thread's function, arguments, state and version, and its whole step history.

        The version is read before the steps (the pipeline keeps the order), so a commit in
        between can only make it older than the steps, and the next commit is then refused
        as stale: never the other way round."""
        if dim == "":
            meta_sql = """SELECT workflow_id, run_id, '' AS dim, name, task_queue, args, status,
       config, attempt, status AS run_status, signal_in, version,
       EXISTS (SELECT 1 FROM {s}.updates u
                WHERE u.run_id = %(run_id)s AND u.status = 'requested') AS inbox
  FROM {s}.workflows WHERE run_id = %(run_id)s"""
        else:
            meta_sql = """SELECT w.workflow_id, t.run_id, t.dim, t.name, t.task_queue, t.args,
       t.status, w.config, 1 AS attempt, w.status AS run_status, w.signal_in, t.version,
       false AS inbox
  FROM {s}.threads t JOIN {s}.workflows w ON w.run_id = t.run_id
 WHERE t.run_id = %(run_id)s AND t.dim = %(dim)s"""
        steps_sql = """SELECT idx, kind, name, status, result, error, seq FROM {s}.steps
 WHERE run_id = %(run_id)s AND dim = %(dim)s ORDER BY idx"""
        params = {"run_id": run_id, "dim": dim}

        async def go(conn: psycopg.AsyncConnection[Any]) -> tuple[Any, Any]:
            async with conn.pipeline():
                c1 = conn.cursor(row_factory=dict_row)
                c2 = conn.cursor(row_factory=dict_row)
                await c1.execute(self.sql(meta_sql), params)
                await c2.execute(self.sql(steps_sql), params)
            meta = await c1.fetchone()
            steps = await c2.fetchall()
            return meta, steps
        meta, steps = await self.store.run(go)
        return meta, list(steps)

    async def load_steps(self, run_id: str, dim: str, idxs: list[int],
                         from_idx: int) -> tuple[int | None, list[dict[str, Any]], bool]:
        """The thread's version (None when it is gone), with its steps among ``idxs`` that are
        settled and every step at or after ``from_idx``, and whether updates wait for the
        (main) thread to admit them, read in one snapshot. The reads of one event-loop tick
        (many threads resuming) share one statement."""
        found: tuple[int | None, list[dict[str, Any]], bool] | None = await self._step_reads.get(
            (run_id, dim, tuple(idxs), from_idx))
        return found or (None, [], False)

    async def _steps_of(self, keys: list[tuple[str, str, tuple[int, ...], int]]
                        ) -> dict[Any, tuple[int | None, list[dict[str, Any]], bool]]:
        wanted = [(n, idx) for n, key in enumerate(keys) for idx in key[2]]
        rows = await self.store.fetch(self.sql(_STEPS_OF), {
            "run_ids": [k[0] for k in keys], "dims": [k[1] for k in keys],
            "froms": [k[3] for k in keys], "ns": list(range(len(keys))),
            "wn": [w[0] for w in wanted], "widx": [w[1] for w in wanted]})
        found: dict[Any, tuple[int | None, list[dict[str, Any]], bool]] = {}
        for row in rows:
            key = keys[row.pop("n")]
            version = row.pop("version")
            inbox = row.pop("inbox")
            if row["idx"] is None:
                found[key] = (version, [], bool(inbox))
            else:
                found[key][1].append(row)
        return found

    async def commit_pass(self, thread: Thread, commands: list[durable.Command],
                          delivered: list[tuple[int, int]], *, lease: Lease, version: int,
                          finalize: int | None = None,
                          finish: tuple[str, str | None, str | None] | None = None,
                          continued: durable.ContinueAsNew | None = None) -> PassOutcome:
        """Commit what a pass decided, in one transaction sent in one round trip.

        ``commands`` are its new durable calls; ``delivered`` the (idx, delivery number) of
        the results it consumed. ``finalize=wake`` drops the pass task unless the thread was
        woken meanwhile (then ``wake`` is the new count). ``finish=(status, result, error)``
        ends the thread; ``continued`` ends the run as continued-as-new and starts its next
        run (``commands`` are then dropped). The commit is fenced: it applies only while the
        run is live, the ``lease`` is still held and the thread is at ``version``; otherwise
        nothing is written and ``refused`` says why.
        """
        st: list[tuple[Any, Statement]] = []
        fused: durable.ActivityCall | None = None
        parts = None
        first = commands[0] if len(commands) == 1 else None
        if isinstance(first, durable.ActivityCall) and finish is None:
            fused = first  # the common pass: one activity, fused into the head
            commands = []
            parts = cmd.activity_parts(thread, fused, self.namespace)
        finishing = False
        if continued is not None:
            parts = continue_parts(thread, continued, [d[0] for d in delivered],
                                   self.namespace)
            commands, finish, finishing = [], None, True
            st.append((None, lock_signals(thread)))
        if finish is not None and not commands:  # the last pass: fused likewise
            parts = cmd.finish_parts(thread.run_id, thread.dim, finish[0], finish[1],
                                     finish[2], self.namespace)
            finish, finishing = None, True
        st.append((("head", fused),
                   _head(thread, lease, version, delivered, finalize, parts, finishing)))
        for c in commands:
            built = command_statements(thread, c, self.namespace)
            for i, one in enumerate(built):
                last = i == len(built) - 1
                key: Any = None
                if last and c.immediate:
                    key = c.idx
                elif last and isinstance(c, durable.ActivityCall) and c.leased_to is not None \
                        and c.leased_to.owner:
                    key = ("local", c)
                st.append((key, one))
        if finish is not None:
            st.append((None, cmd.finish_thread(thread.run_id, thread.dim, finish[0], finish[1],
                                               finish[2], self.namespace)))

        async def go(conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, Any]]:
            cursors: list[tuple[Any, psycopg.AsyncCursor[Any]]] = []
            async with conn.pipeline(), conn.transaction():
                for key, (sql, params) in st:
                    cur = conn.cursor(row_factory=dict_row)
                    await cur.execute(self.sql(sql), params)
                    cursors.append((key, cur))
            return [(key, await cur.fetchone() if cur.description else None)
                    for key, cur in cursors]

        try:
            if len(st) == 1:  # a single statement joins the group commit of this tick
                key, (sql, params) = st[0]
                rows = [(key, await self._group.run(self.sql(sql), params))]
            else:
                rows = await self.store.run(go, retry_for=0)
        except psycopg.Error as exc:
            refused = REFUSALS.get(exc.sqlstate or "")
            if refused is None:
                raise
            return PassOutcome(alive=False, refused=refused)
        outcome = PassOutcome(alive=True)
        for key, row in rows:
            if key is None or row is None:
                continue
            if isinstance(key, tuple):  # ("head", fused activity or None) / ("local", command)
                if key[0] == "head":
                    outcome.version = row["version"]
                    if row["deleted"] == 0 and row["wake"] is not None:
                        outcome.wake = int(row["wake"])
                c = key[1]
                if c is not None and row.get("lease_owner"):
                    outcome.local.append(Task(
                        id=int(row["id"]), queue=c.task_queue, kind="a",
                        run_id=thread.run_id, dim=thread.dim, idx=c.idx,
                        payload=payload.loads(c.task_payload_json), attempts=1, wake=0))
            else:
                outcome.results[key] = row
        return outcome



def _head(thread: Thread, lease: Lease, version: int, delivered: list[tuple[int, int]],
          finalize: int | None, fused: tuple[str, str, dict[str, Any]] | None,
          finishing: bool) -> Statement:
    """One statement for the bookkeeping of a pass, fenced (see ``fence`` in the schema): hold
    the pass task's row, bump the thread's version, mark the deliveries the pass consumed and
    drop its task unless it was woken meanwhile; ``fused`` (CTEs, columns, parameters) adds a
    command's own writes, or the thread's finish (``finishing``: its ``fin`` CTE bumps the
    version), to the same statement."""
    ctes = []
    params: dict[str, Any] = {"run_id": thread.run_id, "dim": thread.dim,
                              "lease_task": lease.task_id, "lease_owner": lease.owner,
                              "lease_token": lease.token, "lease_version": version}
    if fused is not None:
        ctes.append(fused[0])
        params.update(fused[2])
    ctes.append(_HELD)
    if delivered:
        ctes.append("""delivery_marks AS (UPDATE {s}.steps s SET seq = v.seq
      FROM unnest(%(idxs)s::int[], %(seqs)s::int[]) AS v(idx, seq)
     WHERE s.run_id = %(run_id)s AND s.dim = %(dim)s AND s.idx = v.idx)""")
        params.update(idxs=[d[0] for d in delivered], seqs=[d[1] for d in delivered])
    if finalize is not None:
        ctes.append("""pass_task_dropped AS (DELETE FROM {s}.tasks
                WHERE id IN (SELECT id FROM pass_task) AND wake = %(lease_wake)s RETURNING id)""")
        params.update(lease_wake=finalize)
    if finishing:
        versioned = "fin"
        live = "EXISTS (SELECT 1 FROM fin)"
        if thread.dim != "":
            live = f"{_RUN_LIVE} AND {live}"
    else:
        versioned = "thread_version"
        if thread.dim == "":
            ctes.append("""thread_version AS (UPDATE {s}.workflows SET version = version + 1
                WHERE run_id = %(run_id)s RETURNING version, status)""")
            live = "coalesce((SELECT status = 'running' FROM thread_version), false)"
        else:
            ctes.append("""thread_version AS (UPDATE {s}.threads SET version = version + 1
                WHERE run_id = %(run_id)s AND dim = %(dim)s RETURNING version, status)""")
            live = (f"{_RUN_LIVE} AND "
                    "coalesce((SELECT status = 'running' FROM thread_version), false)")
    fence = (f"{{s}}.fence({live}, EXISTS (SELECT 1 FROM pass_task), "
             f"coalesce((SELECT version FROM {versioned}) = %(lease_version)s + 1, false))")
    counts = ("(SELECT count(*) FROM pass_task_dropped) AS deleted, "
              "(SELECT wake FROM pass_task) AS wake"
              if finalize is not None else "NULL::int AS deleted, NULL::int AS wake")
    if fused is not None:
        counts += ", " + fused[1]
    return (f"WITH {', '.join(ctes)} SELECT {fence} AS live, "
            f"(SELECT version FROM {versioned}) AS version, {counts}", params)


# The pass task, locked, while this worker still holds it under the same claim.
_HELD = """pass_task AS (SELECT id, wake FROM {s}.tasks
       WHERE id = %(lease_task)s AND lease_owner = %(lease_owner)s
         AND attempts = %(lease_token)s
         AND visible_at > {s}.clock() FOR UPDATE)"""

# The run accepts this hook thread: it is live, or completed with its hook channel open.
_RUN_LIVE = f"""coalesce((
    SELECT {takes_hooks("w")}
      FROM {{s}}.workflows w WHERE run_id = %(run_id)s FOR NO KEY UPDATE), false)"""


_STEPS_OF = """WITH k AS (
    SELECT * FROM unnest(%(run_ids)s::text[], %(dims)s::text[], %(froms)s::int[],
                         %(ns)s::int[]) AS k(run_id, dim, from_idx, n)),
w AS (SELECT * FROM unnest(%(wn)s::int[], %(widx)s::int[]) AS w(n, idx))
SELECT k.n, NULL::int AS idx, NULL::text AS kind, NULL::text AS name, NULL::text AS status,
       NULL::jsonb AS result, NULL::jsonb AS error, NULL::int AS seq,
       CASE WHEN k.dim = '' THEN (SELECT version FROM {s}.workflows v WHERE v.run_id = k.run_id)
            ELSE (SELECT version FROM {s}.threads v
                   WHERE v.run_id = k.run_id AND v.dim = k.dim) END AS version,
       k.dim = '' AND EXISTS (SELECT 1 FROM {s}.updates u
                               WHERE u.run_id = k.run_id AND u.status = 'requested') AS inbox
  FROM k
UNION ALL
SELECT k.n, s.idx, s.kind, s.name, s.status, s.result, s.error, s.seq, NULL::int, NULL::boolean
  FROM k JOIN {s}.steps s ON s.run_id = k.run_id AND s.dim = k.dim AND s.idx >= k.from_idx
UNION ALL
SELECT k.n, s.idx, s.kind, s.name, s.status, s.result, s.error, s.seq, NULL::int, NULL::boolean
  FROM w JOIN k ON k.n = w.n
  JOIN {s}.steps s ON s.run_id = k.run_id AND s.dim = k.dim AND s.idx = w.idx
 WHERE s.status <> 'pending' AND s.idx < k.from_idx
 ORDER BY 1, 2 NULLS FIRST"""
