"""The raw SQL search form, confined: the caller's SELECT runs inside a SECURITY DEFINER
function owned by a per-namespace NOLOGIN role that may only read this namespace's workflow
rows (the ``search_view`` of migration 5).

Why a function and not just ``SET LOCAL ROLE``: a role set with ``SET ROLE`` can be reset by
the query itself (``set_config('role', 'none', true)``) to the session user, but inside a
security-definer function PostgreSQL refuses to change ``role`` or ``session_authorization``.
The role is created on the first SQL search of a namespace (roles are cluster-wide, so it is
named from the database and the namespace); that needs the CREATEROLE privilege, and without
it the call raises a clear error rather than run unconfined.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql as pgsql

from memflow import payload
from memflow.errors import MemFlowError
from memflow.store.scope import Part, Scope

MAX_ROWS = 10_000
"""The most rows one SQL search returns; a query that would return more raises ValueError."""

# What a user's SQL sees as ``workflows``: the namespace's runs, of one task queue and workflow
# name when the transaction's settings memflow.search_queue / memflow.search_name are not empty.
VIEW_COLUMNS = ("workflow_id", "run_id", "workflow_name", "task_queue", "status", "entity_type",
                "entity", "search", "result", "created_at", "updated_at", "completed_at",
                "parent_workflow_id")
_WRAP = """WITH workflows AS (
    SELECT * FROM {s}.search_view
     WHERE (current_setting('memflow.search_queue') = ''
            OR task_queue = current_setting('memflow.search_queue'))
       AND (current_setting('memflow.search_name') = ''
            OR workflow_name = current_setting('memflow.search_name')))
SELECT * FROM (
"""
_SETTINGS = """SELECT set_config('memflow.search_queue', %s, true),
       set_config('memflow.search_name', %s, true),
       set_config('statement_timeout', %s, true)"""
_CALL = "SELECT search_row FROM {s}.search_exec(%s, %s::jsonb, %s) AS search_row"
_READY = """SELECT p.proowner::regrole::text AS owner FROM pg_catalog.pg_proc p
 WHERE p.oid = to_regprocedure(%s)"""
_FUNCTION = """CREATE OR REPLACE FUNCTION {s}.search_exec(q text, params jsonb, max_rows int)
RETURNS SETOF json LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    RETURN QUERY EXECUTE 'SELECT to_json(search_rows) FROM (' || q
        || E'\\n) AS search_rows LIMIT ' || max_rows USING params;
END
$fn$"""
# Quoted literals, quoted identifiers, dollar-quoted strings and comments, where a ``$n`` is
# text, not a placeholder; then the placeholders.
_TOKENS = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|(\$[A-Za-z_]*\$).*?\1|--[^\n]*"""
                     r"""|/\*.*?\*/|\$(\d+)""", re.S)
_PERCENT = re.compile(r"%%|%s")


def role_name(database: str, namespace: str) -> str:
    """The cluster-wide name of the search role of ``namespace`` in ``database``."""
    digest = hashlib.md5(f"{database}/{namespace}".encode()).hexdigest()[:10]
    return f"mf_search_{digest}_{namespace[:40]}"


def dollar_placeholders(sql: str) -> str:
    """``sql`` with psycopg-style ``%s`` placeholders turned into ``$1…`` (``%%`` into ``%``);
    SQL already written with ``$1…`` placeholders is returned unchanged."""
    if "%s" not in sql.replace("%%", ""):
        return sql
    counter = iter(range(1, 1_000_000))
    return _PERCENT.sub(lambda m: "%" if m.group() == "%%" else f"${next(counter)}", sql)


def _param(i: int, value: Any) -> str:
    """The expression that reads parameter ``i`` (0-based) of the bound JSON array ``$1``,
    typed like psycopg would bind ``value``."""
    text = f"($1->>{i})"
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return f"{text}::boolean"
    if isinstance(value, int):
        return f"{text}::bigint"
    if isinstance(value, float):
        return f"{text}::float8"
    if isinstance(value, datetime):
        return f"{text}::{'timestamptz' if value.tzinfo else 'timestamp'}"
    if isinstance(value, date):
        return f"{text}::date"
    if isinstance(value, dict):
        return f"($1->{i})"
    if isinstance(value, list | tuple):
        kinds = {type(v) for v in value}
        cast = {frozenset({str}): "text", frozenset({int}): "bigint",
                frozenset({float}): "float8", frozenset({int, float}): "float8",
                frozenset({bool}): "boolean"}.get(frozenset(kinds))
        if cast is None:
            return f"($1->{i})"
        return (f"ARRAY(SELECT e::{cast} FROM jsonb_array_elements_text($1->{i}) e)"
                if value else f"'{{}}'::{cast}[]")
    return text


def _json_param(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def bind_params(sql: str, params: list[Any]) -> tuple[str, str]:
    """``sql`` with each placeholder ``$k`` replaced by a typed read of the one bound JSON
    array parameter, and that array as JSON text: values stay data, never SQL."""
    def sub(m: re.Match[str]) -> str:
        if m.group(2) is None:
            return m.group(0)
        k = int(m.group(2))
        if not 1 <= k <= len(params):
            raise ValueError(f"search SQL failed: it refers to ${k} but {len(params)} "
                             "parameter(s) were given")
        return _param(k - 1, params[k - 1])
    text = _TOKENS.sub(sub, dollar_placeholders(sql))
    return text, payload.dumps([_json_param(p) for p in params], "search parameters")


class SqlSearchQueries(Part):
    """The confined SQL search."""

    def __init__(self, scope: Scope):
        super().__init__(scope)
        self._search_ready = False

    async def _search_role_ready(self) -> None:
        """Create the namespace's search role and function once (idempotent, any process)."""
        if self._search_ready:
            return
        signature = self.sql("{s}.search_exec(text,jsonb,integer)")

        async def go(conn: psycopg.AsyncConnection[Any]) -> None:
            cur = await conn.execute("SELECT current_database()")
            row = await cur.fetchone()
            role = role_name(str(row[0]) if row else "", self.namespace)
            cur = await conn.execute(_READY, (signature,))
            found = await cur.fetchone()
            if found and found[0] == role:
                return
            ident = pgsql.Identifier(role)
            schema = pgsql.Identifier(self.namespace)
            try:
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('memflow-search'),"
                                       " hashtext(%s))", (self.namespace,))
                    cur = await conn.execute("SELECT 1 FROM pg_catalog.pg_roles "
                                             "WHERE rolname = %s", (role,))
                    if await cur.fetchone() is None:
                        await conn.execute(pgsql.SQL("CREATE ROLE {} NOLOGIN").format(ident))
                    await conn.execute(pgsql.SQL("GRANT {} TO CURRENT_USER").format(ident))
                    await conn.execute(pgsql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                        schema, ident))
                    await conn.execute(pgsql.SQL("GRANT SELECT ON {}.search_view TO {}").format(
                        schema, ident))
                    await conn.execute(self.sql(_FUNCTION))
                    await conn.execute(pgsql.SQL("ALTER FUNCTION {}.search_exec(text, jsonb, "
                                                 "integer) OWNER TO {}").format(schema, ident))
            except psycopg.errors.InsufficientPrivilege as exc:
                raise MemFlowError(
                    f"the SQL search form runs as the confined role {role!r}, which MemFlow "
                    f"could not create ({exc}); create it once as a role with CREATEROLE (run "
                    "the same search as such a role), or use the query= form") from None
        await self.store.run(go, retry_for=0)
        self._search_ready = True

    async def search_sql(self, sql: str, params: list[Any], task_queue: str | None,
                         name: str | None, timeout: float) -> list[dict[str, Any]]:
        """Rows of the caller's ``SELECT`` (with ``$1…``/``%s`` placeholders bound to
        ``params``), run against ``workflows`` = this namespace's runs (see ``VIEW_COLUMNS``).

        The text runs as a subquery of one statement (never several, never a data-modifying
        one), inside the namespace's confined search function (its role reads the namespace's
        workflow rows only), in a READ ONLY transaction rolled back afterwards, under a
        statement timeout of ``timeout`` seconds, returning at most ``MAX_ROWS`` rows. A lost
        connection is not retried (the query may be what killed it): ``ConnectionError``.
        """
        await self._search_role_ready()
        body, params_json = bind_params(sql.rstrip().rstrip(";"), params)
        text = self.sql(_WRAP) + body + "\n) AS user_rows"
        settings = (task_queue or "", name or "", str(max(1, int(timeout * 1000))))

        async def go(conn: psycopg.AsyncConnection[Any]) -> list[dict[str, Any]]:
            rows: list[Any] = []
            try:
                async with conn.transaction() as tx:
                    await conn.execute("SET TRANSACTION READ ONLY")
                    await conn.execute(_SETTINGS, settings)
                    cur = await conn.execute(self.sql(_CALL), (text, params_json, MAX_ROWS + 1))
                    rows = [r[0] for r in await cur.fetchall()]
                    raise psycopg.Rollback(tx)
            except psycopg.errors.QueryCanceled as exc:
                raise TimeoutError(f"search SQL ran longer than {timeout}s") from exc
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                raise ValueError(f"search SQL failed: {exc}") from exc
            finally:
                # The rollback undid every setting; session advisory locks outlive it.
                with contextlib.suppress(psycopg.Error):
                    await conn.execute("SELECT pg_advisory_unlock_all()")
            if len(rows) > MAX_ROWS:
                raise ValueError(f"search SQL returned more than {MAX_ROWS:,} rows; narrow it "
                                 "or add a LIMIT")
            return rows
        try:
            return list(await self.store.run(go, retry_for=0))
        except psycopg.OperationalError as exc:
            raise ConnectionError(f"search SQL lost its connection (not retried: the query "
                                  f"may be what ended it): {exc}") from exc
