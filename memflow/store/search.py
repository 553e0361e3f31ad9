"""Search-field SQL: each search call of a workflow as one statement, and finding workflows.

Search fields live in the ``search`` JSONB column of a run as a flat object of strings. A call
is recorded like an entity call (see ``memflow.store.entity.recorded_update``): one statement
locks the row, computes, records the step and writes only if the step is new.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from memflow import payload
from memflow.store.commands import Command, Statement, Thread
from memflow.store.entity import recorded_update

# The decimal forms a stored value may take to be counted as a number by incr/mult (exponents
# are kept short so that no stored text can overflow PostgreSQL's numeric type). Results must
# stay below 1e308 (a double's range) with at most 400 decimals, so any client can read them.
_NUMERIC = r"'^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,4})?\s*$'"


def _arith(expr: str, unit: str, guard: str) -> str:
    """``calc`` of incr/mult: ``expr`` of the stored value ``{x}`` (``unit`` when missing) and
    %(by)s, allowed when ``guard`` holds for the stored value."""
    return f"""raw AS (SELECT cur.doc, cur.doc ->> %(key)s::text AS raw FROM cur),
chk AS (
    SELECT raw.doc, raw.raw,
           CASE WHEN raw.raw IS NULL THEN true
                WHEN raw.raw !~ {_NUMERIC} THEN false
                ELSE {guard.format(x='raw.raw::numeric')} END AS ok
      FROM raw),
val AS (
    SELECT chk.doc, chk.ok,
           CASE WHEN chk.ok THEN trim_scale({expr.format(x=f'coalesce(chk.raw::numeric, {unit})')})
           END AS v
      FROM chk),
fit AS (
    SELECT val.doc, val.v,
           coalesce(val.ok AND abs(val.v) < 1e308 AND scale(val.v) <= 400, false) AS ok
      FROM val),
calc AS (
    SELECT CASE WHEN NOT fit.ok THEN 'search field ' || %(key)s::text
                || ' does not hold a number, or the result is out of range' END AS why,
           CASE WHEN fit.ok THEN fit.doc || jsonb_build_object(%(key)s::text, fit.v::text)
           END AS new_doc,
           to_jsonb(fit.v) AS result
      FROM fit)"""


_CALC: dict[str, str] = {
    "set": """calc AS (
    SELECT NULL::text AS why, cur.doc || %(fields)s::jsonb AS new_doc,
           to_jsonb((SELECT count(*) FROM jsonb_object_keys(%(fields)s::jsonb) k
                      WHERE NOT cur.doc ? k)) AS result
      FROM cur)""",
    "get": """calc AS (
    SELECT NULL::text AS why, NULL::jsonb AS new_doc, cur.doc -> %(key)s::text AS result
      FROM cur)""",
    "mget": """calc AS (
    SELECT NULL::text AS why, NULL::jsonb AS new_doc,
           coalesce((SELECT jsonb_agg(cur.doc -> u.k ORDER BY u.n)
                       FROM unnest(%(keys)s::text[]) WITH ORDINALITY AS u(k, n)),
                    '[]'::jsonb) AS result
      FROM cur)""",
    "delete": """calc AS (
    SELECT NULL::text AS why, cur.doc - %(keys)s::text[] AS new_doc,
           to_jsonb((SELECT count(DISTINCT u.k) FROM unnest(%(keys)s::text[]) AS u(k)
                      WHERE cur.doc ? u.k)) AS result
      FROM cur)""",
    "incr": _arith("{x} + %(by)s::numeric", "0", "abs({x}) < 1e100000"),
    "mult": _arith("{x} * %(by)s::numeric", "1",
                   "abs({x}) < 1e100000 AND scale({x}) + scale(%(by)s::numeric) <= 16000"),
}

_SQL = {op: recorded_update("search", calc) for op, calc in _CALC.items()}


def search_statement(t: Thread, c: Command, channel: str) -> list[Statement]:
    """The statement of one search call (``c.options``: ``op``, ``fields`` (JSON text of a
    flat object of strings), ``key``, ``keys``, ``by`` (decimal text) and ``what``)."""
    op = c.options["op"]
    params: dict[str, Any] = {
        "run_id": t.run_id, "dim": t.dim, "idx": c.idx, "kind": c.kind, "name": c.name,
        "what": c.options.get("what", f"search.{op}"), "fields": c.options.get("fields"),
        "key": c.options.get("key"), "keys": c.options.get("keys") or [],
        "by": c.options.get("by"),
    }
    return [(_SQL[op], params)]


# Finding workflows ---------------------------------------------------------------------------

# What a user's SQL sees as ``workflows``: the namespace's runs, of one task queue and workflow
# name when the transaction's settings memflow.search_queue / memflow.search_name are not empty.
VIEW_COLUMNS = ("workflow_id", "run_id", "workflow_name", "task_queue", "status", "entity_type",
                "entity", "search", "result", "created_at", "updated_at", "completed_at",
                "parent_workflow_id")
_VIEW = """WITH workflows AS (
    SELECT workflow_id, run_id, name AS workflow_name, task_queue, status, entity_type, entity,
           search, result, created_at, updated_at, completed_at, parent_id AS parent_workflow_id
      FROM {s}.workflows
     WHERE (current_setting('memflow.search_queue') = ''
            OR task_queue = current_setting('memflow.search_queue'))
       AND (current_setting('memflow.search_name') = ''
            OR name = current_setting('memflow.search_name')))
SELECT * FROM (
"""
_SETTINGS = """SELECT set_config('memflow.search_queue', %s, true),
       set_config('memflow.search_name', %s, true),
       set_config('statement_timeout', %s, true)"""
_PERCENT = re.compile(r"%%|%s")


def dollar_placeholders(sql: str) -> str:
    """``sql`` with psycopg-style ``%s`` placeholders turned into ``$1…`` (``%%`` into ``%``);
    SQL already written with ``$1…`` placeholders is returned unchanged."""
    if "%s" not in sql.replace("%%", ""):
        return sql
    counter = iter(range(1, 1_000_000))
    return _PERCENT.sub(lambda m: "%" if m.group() == "%%" else f"${next(counter)}", sql)


def _bindable(value: Any) -> Any:
    return Jsonb(value, dumps=payload.dumps) if isinstance(value, dict) else value


class SearchQueries:
    """Queries that find workflows by search fields (mixed into NamespaceStore)."""

    store: Any
    namespace: str

    def q(self, template: str) -> str:  # pragma: no cover - provided by NamespaceStore
        raise NotImplementedError

    async def search_ids(self, fields_json: str, task_queue: str | None,
                         name: str | None) -> list[str]:
        """Ids of runs whose search fields include every field of ``fields_json``."""
        rows = await self.store.fetch(self.q("""SELECT workflow_id FROM {s}.workflows
 WHERE search @> %(fields)s::jsonb
   AND (%(queue)s::text IS NULL OR task_queue = %(queue)s)
   AND (%(name)s::text IS NULL OR name = %(name)s)
 ORDER BY created_at, workflow_id"""), {"fields": fields_json, "queue": task_queue,
                                        "name": name})
        return [r["workflow_id"] for r in rows]

    async def search_sql(self, sql: str, params: list[Any], task_queue: str | None,
                         name: str | None, timeout: float) -> list[dict[str, Any]]:
        """Rows of the caller's ``SELECT`` (with ``$1…``/``%s`` placeholders bound to
        ``params``), run against ``workflows`` = this namespace's runs (see ``VIEW_COLUMNS``).

        The text runs as a subquery of one statement (never several statements, never a
        data-modifying one) in a READ ONLY transaction that is rolled back afterwards, under
        a statement timeout of ``timeout`` seconds. Its ``$k`` are ``params`` only. It runs
        with the connection's privileges, so it must be trusted text: values go in ``params``.
        """
        body = dollar_placeholders(sql).rstrip().rstrip(";")
        text = self.q(_VIEW) + body + "\n) AS search_rows"
        values = [_bindable(p) for p in params]
        settings = (task_queue or "", name or "", str(max(1, int(timeout * 1000))))

        async def go(conn: psycopg.AsyncConnection[Any]) -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = []
            try:
                async with conn.transaction() as tx:
                    await conn.execute("SET TRANSACTION READ ONLY")
                    await conn.execute(_SETTINGS, settings)
                    cur = psycopg.AsyncRawCursor(conn, row_factory=dict_row)
                    # Pipeline mode always uses the extended protocol: one statement, never
                    # several, even without parameters.
                    async with conn.pipeline():
                        await cur.execute(text, values)
                    rows = await cur.fetchall()
                    raise psycopg.Rollback(tx)
            except psycopg.errors.QueryCanceled as exc:
                raise TimeoutError(f"search SQL ran longer than {timeout}s") from exc
            except psycopg.errors.ProtocolViolation as exc:  # e.g. $k without a parameter
                raise ValueError(f"search SQL failed: {exc}") from exc
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                raise ValueError(f"search SQL failed: {exc}") from exc
            finally:
                # The rollback undid every setting; session advisory locks outlive it.
                with contextlib.suppress(psycopg.Error):
                    await conn.execute("SELECT pg_advisory_unlock_all()")
            return rows
        return list(await self.store.run(go))
