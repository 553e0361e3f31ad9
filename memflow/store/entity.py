"""Entity SQL: each entity call of a workflow as one statement, and the static entity queries.

An entity call locks its workflow row, computes the new document and the call's result from
the row's current ``entity``, records the result as the call's step and writes the document,
all in one statement. The write happens only if the step row is new, so a pass committed twice
changes the document once; either way the statement returns the step's recorded
``status, result, error``.

Paths are bound as ``text[]``. Updates create missing intermediate objects, step into arrays by
index, and never raise an SQL error for the shape of the data: a call that does not fit the
document (incrementing a string, an index past the end of an array, ...) is recorded as a
failed step instead (raised as ``MemFlowFatalError`` in the workflow) and changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from memflow.commands import EntityCall
from memflow.store.commands import Statement, Thread
from memflow.store.scope import Part

FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def recorded_update(column: str, calc: str) -> str:
    """One statement that reads ``column`` of the workflow row (locked) as CTE ``cur(doc)``,
    runs ``calc`` (CTEs ending in ``calc(why, new_doc, result)``), records the step and, when
    the step is new and ``why`` is NULL, writes ``new_doc`` (a NULL ``new_doc`` writes nothing).
    """
    return f"""WITH RECURSIVE cur AS (
    SELECT {column} AS doc FROM {{s}}.workflows WHERE run_id = %(run_id)s FOR NO KEY UPDATE),
{calc},
st AS (
    INSERT INTO {{s}}.steps (run_id, dim, idx, kind, name, status, result, error, completed_at)
    SELECT %(run_id)s, %(dim)s, %(idx)s, %(kind)s, %(name)s,
           CASE WHEN calc.why IS NULL THEN 'done' ELSE 'failed' END,
           CASE WHEN calc.why IS NULL THEN calc.result END,
           CASE WHEN calc.why IS NOT NULL THEN jsonb_build_object(
               'message', %(what)s::text || ': ' || calc.why, 'code', 598,
               'type', 'MemFlowFatalError', 'stack', '') END,
           {{s}}.clock()
      FROM calc
    ON CONFLICT DO NOTHING RETURNING status, result, error),
up AS (
    UPDATE {{s}}.workflows w SET {column} = calc.new_doc, updated_at = {{s}}.clock()
      FROM calc
     WHERE w.run_id = %(run_id)s AND calc.why IS NULL AND calc.new_doc IS NOT NULL
       AND EXISTS (SELECT 1 FROM st))
SELECT status, result, error FROM st
UNION ALL
SELECT status, result, error FROM {{s}}.steps
 WHERE run_id = %(run_id)s AND dim = %(dim)s AND idx = %(idx)s
   AND NOT EXISTS (SELECT 1 FROM st)"""


_PATH = "pp AS (SELECT %(path)s::text[] AS p)"

# Creates the missing (or null) intermediate objects of the path; stops with ``why`` at a
# scalar in the way or at an array index that does not exist.
_WALK = """walk(k, doc, why) AS (
    SELECT 0, cur.doc, NULL::text FROM cur
  UNION ALL
    SELECT w.k + 1,
           CASE WHEN x.fits AND (x.node IS NULL OR x.node = 'null'::jsonb)
                THEN jsonb_set(w.doc, x.q, '{}'::jsonb) ELSE w.doc END,
           CASE WHEN NOT x.fits
                THEN 'the array at "' || array_to_string(x.q[1:w.k], '.')
                     || '" has no element ' || x.q[w.k + 1]
                WHEN jsonb_typeof(x.node) NOT IN ('null', 'object', 'array')
                THEN '"' || array_to_string(x.q, '.') || '" holds a JSON '
                     || jsonb_typeof(x.node) || ', not an object' END
      FROM walk w, pp,
           LATERAL (SELECT pp.p[1:w.k + 1] AS q, w.doc #> pp.p[1:w.k + 1] AS node,
                           (jsonb_typeof(w.doc #> pp.p[1:w.k]) = 'object'
                            OR w.doc #> pp.p[1:w.k + 1] IS NOT NULL) AS fits) x
     WHERE w.why IS NULL AND w.k < cardinality(pp.p) - 1),
tgt AS (
    SELECT f.doc, pp.p, f.doc #> pp.p AS node,
           coalesce(f.why, CASE
               WHEN jsonb_typeof(f.doc #> pp.p[1:cardinality(pp.p) - 1]) <> 'object'
                    AND f.doc #> pp.p IS NULL
               THEN 'the array at "' || array_to_string(pp.p[1:cardinality(pp.p) - 1], '.')
                    || '" has no element ' || pp.p[cardinality(pp.p)] END) AS why
      FROM (SELECT doc, why FROM walk ORDER BY k DESC LIMIT 1) f, pp)"""

# The value at the path without changing anything (CTE ``tgt`` without the walk).
_AT = "tgt AS (SELECT cur.doc, pp.p, cur.doc #> pp.p AS node, NULL::text AS why FROM cur, pp)"


def _typed(types: str, noun: str, value: str, result: str = "val",
           writes: str = "z.why IS NULL") -> str:
    """``calc`` for an update of the value at the path: ``value`` computes the new value from
    ``t.node``; the current value must be missing or of one of ``types``; the document is
    written when ``writes`` holds."""
    return f"""calc AS (
    SELECT z.why, CASE WHEN {writes} THEN jsonb_set(z.doc, z.p, z.val) END AS new_doc,
           {result} AS result
      FROM (SELECT t.doc, t.p, t.node,
                   coalesce(t.why, CASE WHEN jsonb_typeof(t.node) NOT IN ({types})
                       THEN '"' || array_to_string(t.p, '.') || '" holds a JSON '
                            || jsonb_typeof(t.node) || ', not {noun}' END) AS why,
                   {value} AS val
              FROM tgt t) z)"""


_NUMBER = "CASE WHEN jsonb_typeof(t.node) = 'number' THEN (t.node #>> '{}')::numeric ELSE 0 END"

_CALC: dict[str, str] = {
    "get": f"""{_PATH}, calc AS (
    SELECT NULL::text AS why, NULL::jsonb AS new_doc, cur.doc #> pp.p AS result FROM cur, pp)""",
    "set": """calc AS (
    SELECT NULL::text AS why, %(value)s::jsonb AS new_doc, %(value)s::jsonb AS result FROM cur)""",
    "delete": f"""{_PATH}, calc AS (
    SELECT NULL::text AS why, z.new_doc, coalesce(z.new_doc, z.doc) AS result
      FROM (SELECT cur.doc, CASE WHEN cur.doc #> pp.p IS NOT NULL THEN cur.doc #- pp.p END
                   AS new_doc FROM cur, pp) z)""",
    "append": f"""{_PATH}, {_WALK}, """ + _typed(
        "'null', 'array'", "an array",
        "CASE WHEN jsonb_typeof(t.node) = 'array' THEN t.node ELSE '[]'::jsonb END"
        " || jsonb_build_array(%(value)s::jsonb)"),
    "prepend": f"""{_PATH}, {_WALK}, """ + _typed(
        "'null', 'array'", "an array",
        "jsonb_build_array(%(value)s::jsonb)"
        " || CASE WHEN jsonb_typeof(t.node) = 'array' THEN t.node ELSE '[]'::jsonb END"),
    "increment": f"""{_PATH}, {_WALK}, """ + _typed(
        "'null', 'number'", "a number",
        f"to_jsonb(trim_scale({_NUMBER} + %(by)s::numeric))"),
    "toggle": f"""{_PATH}, {_WALK}, """ + _typed(
        "'null', 'boolean'", "a boolean",
        "CASE WHEN jsonb_typeof(t.node) = 'boolean' THEN to_jsonb(NOT t.node::boolean)"
        " ELSE 'true'::jsonb END"),
    "set_if_not_exists": f"""{_PATH}, {_WALK}, """ + _typed(
        "'null', 'object', 'array', 'string', 'number', 'boolean'", "a value",
        "coalesce(t.node, %(value)s::jsonb)",
        # written only when the path is missing (a JSON null counts as a value)
        writes="z.why IS NULL AND z.node IS NULL"),
    "remove": f"""{_PATH}, {_AT}, calc AS (
    SELECT z.why, CASE WHEN z.why IS NULL THEN jsonb_set(z.doc, z.p, z.val) END AS new_doc,
           z.val AS result
      FROM (SELECT t.doc, t.p,
                   CASE WHEN t.node IS NULL THEN '"' || array_to_string(t.p, '.')
                                                  || '" does not exist'
                        WHEN jsonb_typeof(t.node) <> 'array'
                        THEN '"' || array_to_string(t.p, '.') || '" holds a JSON '
                             || jsonb_typeof(t.node) || ', not an array' END AS why,
                   CASE WHEN jsonb_typeof(t.node) = 'array' THEN t.node - %(index)s::int END
                     AS val
              FROM tgt t) z)""",
}

def merge_calc(depth: int) -> str:
    """``calc`` of a deep merge whose patch (``%(tree)s``, see ``merge_tree``) nests objects
    ``depth`` levels deep.

    Top down, ``b<d>`` pairs each object of the patch at depth d with the current value under
    it (a lookup in its parent's value); bottom up, ``r<d>`` builds each merged object: that
    value if it is an object (else ``{}``), then the patch's plain keys, then the merged child
    objects, grouped by parent. No join and no whole-document copy per object, so the cost
    grows with the patch and the parts of the document it touches, not their product.
    """
    ctes = ["""b0 AS (
    SELECT 0 AS id, NULL::int AS parent, NULL::text AS key, t.tree -> 'l' AS leaves,
           t.tree -> 'c' AS kids, '{}'::jsonb || cur.doc AS base
      FROM cur, (SELECT %(tree)s::jsonb AS tree) t)"""]
    for d in range(1, depth + 1):
        ctes.append(f"""b{d} AS (
    SELECT k.i AS id, p.id AS parent, k.k AS key, k.l AS leaves, k.c AS kids,
           CASE WHEN jsonb_typeof(p.base) = 'object' THEN p.base -> k.k END AS base
      FROM b{d - 1} p CROSS JOIN LATERAL jsonb_to_recordset(p.kids)
           AS k(i int, k text, l jsonb, c jsonb))""")
    own = ("CASE WHEN jsonb_typeof(b.base) = 'object' THEN b.base ELSE '{}'::jsonb END"
           " || b.leaves")
    ctes.append(f"r{depth} AS (SELECT b.id, b.parent, b.key, {own} AS val FROM b{depth} b)")
    for d in range(depth - 1, -1, -1):
        ctes.append(f"""r{d} AS (
    SELECT u.id, (array_agg(u.parent) FILTER (WHERE u.own))[1] AS parent,
           (array_agg(u.key) FILTER (WHERE u.own))[1] AS key,
           (array_agg(u.val) FILTER (WHERE u.own))[1]
             || coalesce(jsonb_object_agg(u.key, u.val) FILTER (WHERE NOT u.own), '{{}}'::jsonb)
             AS val
      FROM (SELECT b.id, b.parent, b.key, true AS own, {own} AS val FROM b{d} b
            UNION ALL
            SELECT r.parent, NULL, r.key, false, r.val FROM r{d + 1} r) u
     GROUP BY u.id)""")
    ctes.append("calc AS (SELECT NULL::text AS why, val AS new_doc, val AS result FROM r0)")
    return ",\n".join(ctes)


_SQL = {op: recorded_update("entity", calc) for op, calc in _CALC.items()}
_MERGE_SQL: dict[int, str] = {}


def _statement_sql(op: str, depth: int) -> str:
    if op != "merge":
        return _SQL[op]
    sql = _MERGE_SQL.get(depth)
    if sql is None:
        sql = _MERGE_SQL[depth] = recorded_update("entity", merge_calc(depth))
    return sql


def entity_statement(t: Thread, c: EntityCall, channel: str) -> list[Statement]:
    """The statement of one entity call (see ``memflow.commands.EntityOp``)."""
    op = c.operation
    params: dict[str, Any] = {
        "run_id": t.run_id, "dim": t.dim, "idx": c.idx, "kind": c.kind, "name": c.step_name,
        "what": op.what, "path": list(op.path), "value": op.value_json, "by": op.by,
        "index": op.index, "tree": op.tree_json,
    }
    return [(_statement_sql(op.op, op.depth), params)]


# Static queries -------------------------------------------------------------------------------

_ORDER = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def _condition(op: str, p: str, v: str) -> str:
    """The test of operator ``op`` on the entity value at path parameter ``p`` against the
    JSON value parameter ``v`` (for ``$like``, a text pattern)."""
    node = f"(w.entity #> %({p})s::text[])"
    value = f"%({v})s::jsonb"
    if op == "$eq":
        return f"{node} @> {value} AND {node} = {value}"
    if op == "$ne":
        return f"{node} IS DISTINCT FROM {value}"
    if op in _ORDER:
        return f"jsonb_typeof{node} = jsonb_typeof({value}) AND {node} {_ORDER[op]} {value}"
    if op == "$in":
        return f"{node} IN (SELECT jsonb_array_elements({value}))"
    if op == "$like":
        return f"(w.entity #>> %({p})s::text[]) LIKE %({v})s::text"
    raise ValueError(f"unknown entity query operator {op!r}")

_FOUND = "SELECT w.workflow_id, w.entity AS context, w.status FROM {s}.workflows w"


def field_path(field: Any) -> list[str]:
    """The segments of a plain dot path (``[A-Za-z_][A-Za-z0-9_]*`` each), else ``ValueError``."""
    if not isinstance(field, str) or not FIELD_RE.match(field):
        raise ValueError(f"invalid entity field {field!r}: use dot-separated names made of "
                         "letters, digits and underscores (not starting with a digit)")
    return field.split(".")


class EntityQueries(Part):
    """Entity queries of a namespace."""


    async def find_entities(self, entity_type: str, conditions: list[tuple[str, str, str]],
                            limit: int | None, offset: int) -> list[dict[str, Any]]:
        """Runs of ``entity_type`` matching every ``(field, op, value)`` condition, oldest
        first, as ``{"workflow_id", "context", "status"}``. ``value`` is JSON text, except for
        ``$like`` where it is the pattern itself."""
        where = ["w.entity_type = %(entity_type)s"]
        params: dict[str, Any] = {"entity_type": entity_type, "limit": limit, "offset": offset}
        for i, (field, op, value_json) in enumerate(conditions):
            where.append("(" + _condition(op, f"p{i}", f"v{i}") + ")")
            params[f"p{i}"] = field_path(field)
            params[f"v{i}"] = value_json
        sql = (f"{_FOUND} WHERE {' AND '.join(where)} ORDER BY w.created_at, w.workflow_id "
               "LIMIT %(limit)s OFFSET %(offset)s")
        return list(await self.store.fetch(self.sql(sql), params))

    async def find_entity_by_id(self, entity_type: str,
                                workflow_id: str) -> dict[str, Any] | None:
        """The run ``workflow_id`` if its entity type is ``entity_type``, else None."""
        rows = await self.store.fetch(self.sql(
            f"{_FOUND} WHERE w.workflow_id = %(id)s AND w.entity_type = %(entity_type)s"),
            {"id": workflow_id, "entity_type": entity_type})
        return rows[0] if rows else None

    async def create_entity_index(self, field: str) -> str:
        """Create (once) a GIN index on the entity value at ``field``; returns its name.

        DDL cannot take bound parameters, so the path enters the statement as a literal; it is
        safe because ``field_path`` admits only letters, digits, underscores and dots.
        """
        path = field_path(field)
        name = "entity_" + hashlib.sha256(field.encode()).hexdigest()[:20]
        literal = "'{" + ",".join(path) + "}'::text[]"
        # The literal is appended after the schema is filled in: a segment named "s" would
        # otherwise read as the schema placeholder.
        ddl = (self.sql(f'CREATE INDEX IF NOT EXISTS "{name}" ON {{s}}.workflows USING gin ')
               + f"((entity #> {literal}) jsonb_path_ops)")

        async def go(conn: Any) -> None:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('memflow-index'), "
                                   "hashtext(%s))", (self.namespace,))
                await conn.execute(ddl)
        await self.store.run(go)
        return name
