"""Search-field SQL: each search call of a workflow as one statement, and finding workflows.

Search fields live in the ``search`` JSONB column of a run as a flat object of strings. A call
is recorded like an entity call (see ``memflow.store.entity.recorded_update``): one statement
locks the row, computes, records the step and writes only if the step is new.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memflow.commands import SearchCall
from memflow.store.commands import Statement, Thread
from memflow.store.entity import recorded_update
from memflow.store.scope import Part

# The decimal forms a stored value may take to be counted as a number by incr/mult (exponents
# are kept short so that no stored text can overflow PostgreSQL's numeric type). Results must
# stay below 1e308 (a double's range) with at most 400 decimals, so any client can read them.
_NUMERIC = r"'^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,4})?\s*$'"


def _arith(expr: Callable[[str], str], unit: str, guard: Callable[[str], str]) -> str:
    """``calc`` of incr/mult: ``expr`` of the stored value (``unit`` when missing) and
    %(by)s, allowed when ``guard`` holds for the stored value."""
    return f"""raw AS (SELECT cur.doc, cur.doc ->> %(key)s::text AS raw FROM cur),
chk AS (
    SELECT raw.doc, raw.raw,
           CASE WHEN raw.raw IS NULL THEN true
                WHEN raw.raw !~ {_NUMERIC} THEN false
                ELSE {guard('raw.raw::numeric')} END AS ok
      FROM raw),
val AS (
    SELECT chk.doc, chk.ok,
           CASE WHEN chk.ok THEN trim_scale({expr(f'coalesce(chk.raw::numeric, {unit})')})
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
    "incr": _arith(lambda x: f"{x} + %(by)s::numeric", "0", lambda x: f"abs({x}) < 1e100000"),
    "mult": _arith(lambda x: f"{x} * %(by)s::numeric", "1",
                   lambda x: f"abs({x}) < 1e100000"
                             f" AND scale({x}) + scale(%(by)s::numeric) <= 16000"),
}

_SQL = {op: recorded_update("search", calc) for op, calc in _CALC.items()}


def search_statement(t: Thread, c: SearchCall, channel: str) -> list[Statement]:
    """The statement of one search call (see ``memflow.commands.SearchOp``)."""
    op = c.operation
    params: dict[str, Any] = {
        "run_id": t.run_id, "dim": t.dim, "idx": c.idx, "kind": c.kind, "name": c.step_name,
        "what": op.what, "fields": op.fields_json, "key": op.key, "keys": list(op.keys),
        "by": op.by,
    }
    return [(_SQL[op.op], params)]


# Finding workflows ---------------------------------------------------------------------------

class SearchQueries(Part):
    """Queries that find workflows by search fields; the raw SQL
    form is in ``memflow.store.sql_search``."""


    async def search_ids(self, fields_json: str, task_queue: str | None,
                         name: str | None) -> list[str]:
        """Ids of runs whose search fields include every field of ``fields_json``."""
        rows = await self.store.fetch(self.sql("""SELECT workflow_id FROM {s}.workflows
 WHERE search @> %(fields)s::jsonb
   AND (%(queue)s::text IS NULL OR task_queue = %(queue)s)
   AND (%(name)s::text IS NULL OR name = %(name)s)
 ORDER BY created_at, workflow_id"""), {"fields": fields_json, "queue": task_queue,
                                        "name": name})
        return [r["workflow_id"] for r in rows]
