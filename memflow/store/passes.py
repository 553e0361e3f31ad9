"""Workflow passes: loading a thread's history, and committing what one pass decided."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from memflow.store import commands as cmd
from memflow.store.commands import Command, Statement, Thread
from memflow.store.entity import entity_statement
from memflow.store.search import search_statement

_BUILDERS: dict[str, Callable[[Thread, Command, str], list[Statement]]] = {
    "activity": cmd.activity,
    "sleep": cmd.sleep,
    "wait": cmd.wait,
    "exec_child": cmd.child,
    "start_child": cmd.child,
    "hook": cmd.hook,
    "exec_hook": cmd.hook,
    "interrupt": cmd.interrupt,
    "emit": cmd.emit,
    "trace": lambda t, c, ch: cmd.recorded(t, c, "done", "true"),
    "signal": lambda t, c, ch: cmd.send_signal(
        c.name or "", c.options["data"], ch, step=cmd.step_params(t, c, "done")),
    "entity": entity_statement,
    "search": search_statement,
}


def thread_open(run_status: str, signal_in: bool | None, dim: str) -> bool:
    """Whether a thread may still run: the run is live, or it is a hook of a completed run
    that keeps its hook channel open (``signal_in=True``)."""
    return run_status == "running" or (
        dim != "" and run_status == "completed" and signal_in is True)


@dataclass
class PassOutcome:
    """What a committed pass learned: whether the run is live, immediate results, a new wake."""

    alive: bool
    results: dict[int, dict[str, Any]] = field(default_factory=dict)
    wake: int | None = None


class PassQueries:
    """Pass statements of a namespace (mixed into NamespaceStore)."""

    store: Any
    namespace: str
    extra_builders: dict[str, Callable[[Thread, Command, str], list[Statement]]] = {}

    def q(self, template: str) -> str:  # pragma: no cover - provided by NamespaceStore
        raise NotImplementedError

    async def load_thread(self, run_id: str, dim: str) -> tuple[dict[str, Any] | None,
                                                                list[dict[str, Any]]]:
        """The thread's function, arguments and state, and its whole step history."""
        if dim == "":
            meta_sql = """SELECT workflow_id, run_id, '' AS dim, name, task_queue, args, status,
       config, attempt, status AS run_status, signal_in
  FROM {s}.workflows WHERE run_id = %(run_id)s"""
        else:
            meta_sql = """SELECT w.workflow_id, t.run_id, t.dim, t.name, t.task_queue, t.args,
       t.status, w.config, 1 AS attempt, w.status AS run_status, w.signal_in
  FROM {s}.threads t JOIN {s}.workflows w ON w.run_id = t.run_id
 WHERE t.run_id = %(run_id)s AND t.dim = %(dim)s"""
        steps_sql = """SELECT idx, kind, name, status, result, error, seq FROM {s}.steps
 WHERE run_id = %(run_id)s AND dim = %(dim)s ORDER BY idx"""
        params = {"run_id": run_id, "dim": dim}

        async def go(conn: psycopg.AsyncConnection[Any]) -> tuple[Any, Any]:
            async with conn.pipeline():
                c1 = conn.cursor(row_factory=dict_row)
                c2 = conn.cursor(row_factory=dict_row)
                await c1.execute(self.q(meta_sql), params)
                await c2.execute(self.q(steps_sql), params)
            meta = await c1.fetchone()
            steps = await c2.fetchall()
            return meta, steps
        meta, steps = await self.store.run(go)
        return meta, list(steps)

    async def load_steps(self, run_id: str, dim: str, idxs: list[int],
                         from_idx: int) -> list[dict[str, Any]]:
        """Steps among ``idxs`` that are settled, and every step at or after ``from_idx``."""
        return list(await self.store.fetch(self.q("""
SELECT idx, kind, name, status, result, error, seq
  FROM {s}.steps WHERE run_id = %(run_id)s AND dim = %(dim)s
   AND ((idx = ANY(%(idxs)s) AND status <> 'pending') OR idx >= %(from_idx)s)
 ORDER BY idx"""), {"run_id": run_id, "dim": dim, "idxs": idxs, "from_idx": from_idx}))

    async def commit_pass(self, thread: Thread, commands: list[Command],
                          delivered: list[tuple[int, int]],
                          finalize: tuple[int, int] | None) -> PassOutcome:
        """Record ``commands`` in one transaction, with the delivery number of each step result
        the pass consumed (``delivered``: (idx, seq) pairs). With ``finalize=(task_id, wake)``
        also drop the pass task unless the thread was woken meanwhile (then ``wake`` is the new
        count)."""
        statements: list[tuple[int | None, Statement]] = []
        if delivered:
            statements.append((None, ("""UPDATE {s}.steps s SET seq = v.seq
  FROM unnest(%(idxs)s::int[], %(seqs)s::int[]) AS v(idx, seq)
 WHERE s.run_id = %(run_id)s AND s.dim = %(dim)s AND s.idx = v.idx""", {
                "idxs": [d[0] for d in delivered], "seqs": [d[1] for d in delivered],
                "run_id": thread.run_id, "dim": thread.dim})))
        for c in commands:
            builder = _BUILDERS.get(c.kind) or self.extra_builders.get(c.kind)
            if builder is None:
                raise ValueError(f"unknown command kind {c.kind!r}")
            built = builder(thread, c, self.namespace)
            for i, st in enumerate(built):
                statements.append((c.idx if c.immediate and i == len(built) - 1 else None, st))
        if finalize is not None:
            statements.append((-1, ("""WITH d AS (DELETE FROM {s}.tasks
    WHERE id = %(id)s AND wake = %(wake)s RETURNING id)
SELECT (SELECT count(*) FROM d) AS deleted,
       (SELECT wake FROM {s}.tasks WHERE id = %(id)s) AS wake""",
                                    {"id": finalize[0], "wake": finalize[1]})))

        async def go(conn: psycopg.AsyncConnection[Any]) -> PassOutcome:
            async with conn.transaction():
                if commands:
                    cur = await conn.execute(self.q(
                        "SELECT status, signal_in FROM {s}.workflows WHERE run_id = %(r)s "
                        "FOR NO KEY UPDATE"), {"r": thread.run_id})
                    row = await cur.fetchone()
                    if row is None or not thread_open(row[0], row[1], thread.dim):
                        return PassOutcome(alive=False)
                cursors: list[tuple[int | None, psycopg.AsyncCursor[Any]]] = []
                async with conn.pipeline():
                    for key, (sql, params) in statements:
                        c = conn.cursor(row_factory=dict_row)
                        await c.execute(self.q(sql), params)
                        cursors.append((key, c))
                outcome = PassOutcome(alive=True)
                for key, c in cursors:
                    if key is None:
                        continue
                    fetched = await c.fetchone() if c.description else None
                    if key == -1:
                        if fetched and not fetched["deleted"] and fetched["wake"] is not None:
                            outcome.wake = int(fetched["wake"])
                    elif fetched is not None:
                        outcome.results[key] = fetched
                return outcome
        return await self.store.run(go, retry_for=0)
